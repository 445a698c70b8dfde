"""The *partition* pass: neurons -> logical cores within every per-core budget.

Objective: the fewest inter-core messages, one message per (source neuron, destination
core) and spike (DESIGN.md section 3), subject to every per-core budget of the target:
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

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from nmcompiler.ir.connectivity import AvgPool2d, Conv2d, Dense, OneToOne, Sparse, SumPool2d
from nmcompiler.ir.errors import FitError, UsageError
from nmcompiler.ir.network import Network

from ..mapping import BUDGET_NAMES, CoreUsage, Partition

__all__ = ["partition", "synapse_row_bits", "speck_layer_memory", "dense_pool_factor",
           "conv_pool_factor", "evaluate_partition"]

_SPECK_NAMES = ("neurons", "kernel_memory_words", "neuron_memory_words", "bias_memory_words",
                "destination_cores")

_RESOURCE_WORDS = {
    "neurons": "neurons",
    "input_axons": "input axons",
    "output_axons": "output axons",
    "synaptic_memory_bits": "bits of synaptic memory",
    "destination_cores": "destination cores",
    "kernel_memory_words": "words of kernel memory",
    "neuron_memory_words": "words of neuron memory",
    "bias_memory_words": "words of bias memory",
}

_RESOURCE_HINTS = {
    "neurons": "split the population",
    "input_axons": "split it or lower fan-in (fewer presynaptic neurons per neuron)",
    "output_axons": "lower its fan-out (fewer destination cores per neuron)",
    "synaptic_memory_bits": "lower its fan-in or the weight bits",
    "destination_cores": "send it to fewer populations",
}


# =========================================================================== helpers
def _ceil_log2(x: np.ndarray | int) -> np.ndarray:
    x = np.maximum(np.asarray(x, dtype=np.int64), 1)
    return np.ceil(np.log2(x)).astype(np.int64)


def synapse_row_bits(n: np.ndarray, target: Any) -> np.ndarray:
    """Synaptic memory in bits of rows of ``n`` synapses (one row = one input axon on a core).

    ``loihi_synapse_config`` follows nengo-loihi's ``SynapseConfig.bits_per_axon``
    (hw_reference.md section 1b): blocks of up to 64 synapses, each
    ``n * bits_per_weight + 4 + 6`` bits rounded up to 64; ``word_per_synapse``
    (sPyNNaker ``synapse_row.h``): ``word_bits * (n + row_header_words)``;
    ``fixed_bits``: ``n * synapse_entry_bits``. Vectorised over ``n``.
    """
    core = target.core
    n = np.asarray(n)
    if n.size > 65_536 and n.dtype.kind in "iu":  # a table over the row lengths, one gather
        top = int(n.max(initial=0))
        if top < 1 << 20:
            return synapse_row_bits(np.arange(top + 1, dtype=np.int64), target)[n]
    n = n.astype(np.int64, copy=False)
    acc = core.synapse_accounting
    if acc == "loihi_synapse_config":
        bpw = int(core.synapse_entry_bits)
        per_block = 64

        def block(k: np.ndarray) -> np.ndarray:
            return -64 * ((-(k * bpw + 10)) // 64)

        full, rem = np.divmod(n, per_block)
        return full * block(np.int64(per_block)) + np.where(rem > 0, block(rem), 0)
    if acc == "word_per_synapse":
        return int(core.synaptic_word_bits) * (n + int(core.row_header_words or 0))
    return n * int(core.synapse_entry_bits)


def dense_pool_factor(weight: np.ndarray, in_shape: tuple[int, ...],
                      sizes: tuple[int, ...] = (2, 4, 8)) -> int:
    """The largest ``k`` of ``sizes`` over which a dense ``(f, C*H*W)`` weight matrix on a
    ``(C, H, W)`` input is constant in every ``k x k`` spatial window (1 if none).

    Such a projection is a ``k x k`` sum pooling followed by a dense layer on the pooled
    ``(C, H/k, W/k)`` input (the NIR importer composes SumPool + Flatten + Affine that
    way); sinabs and the chip apply the pooling on the way out of the source layer.
    Vectorised: one comparison of the weights with each window's first entry per ``k``.
    """
    if len(in_shape) != 3:
        return 1
    c, h, w = (int(x) for x in in_shape)
    wt = np.asarray(weight)
    if wt.ndim != 2 or wt.shape[1] != c * h * w:
        return 1
    for k in sorted((int(x) for x in sizes if int(x) > 1), reverse=True):
        if h % k or w % k:
            continue
        r = wt.reshape(wt.shape[0], c, h // k, k, w // k, k)
        if np.array_equal(r, np.broadcast_to(r[:, :, :, :1, :, :1], r.shape)):
            return k
    return 1


def conv_pool_factor(weight: np.ndarray, in_shape: tuple[int, ...], stride: Any,
                     padding: Any, sizes: tuple[int, ...] = (2, 4, 8), *, rect: bool = False
                     ) -> tuple[int, int]:
    """The largest sum pooling ``(py, px)`` (from ``sizes``) that a convolution of
    ``weight`` (OIHW, all input channels) on a ``(C, H, W)`` input contains.

    It does when the kernel is constant over aligned ``py x px`` blocks and ``H``, the
    kernel height, the stride and the padding are multiples of ``py`` (likewise x): then
    it equals a ``py x px`` sum pooling followed by the convolution of
    ``weight[..., ::py, ::px]`` with stride ``s / p`` and padding ``pad / p`` (the NIR
    importer composes ``SumPool2d -> Conv2d`` the other way). sinabs and the chip pool on
    the way out of the source layer (or in the DVS layer, which may pool rectangles:
    ``rect=True``); elsewhere ``py == px``. A dense layer is a convolution whose kernel is
    its input map (stride = the map size, no padding).
    """
    if len(in_shape) != 3 or np.ndim(weight) != 4:
        return (1, 1)
    w = np.asarray(weight)
    _, h, wd = (int(x) for x in in_shape)
    kh, kw = (int(x) for x in w.shape[2:])
    st = (int(stride[0]), int(stride[1]))
    pd = (int(padding[0]), int(padding[1]))
    cand = sorted({int(x) for x in sizes if int(x) >= 1} | {1}, reverse=True)

    def ok(axis: int, p: int) -> bool:
        if p == 1:
            return True
        size, k, s_, pad = (h, kh, st[0], pd[0]) if axis == 0 else (wd, kw, st[1], pd[1])
        if size % p or k % p or s_ % p or pad % p:
            return False
        shape = list(w.shape)
        shape[2 + axis:3 + axis] = [k // p, p]
        r = w.reshape(shape)
        first = r[:, :, :, :1] if axis == 0 else r[..., :1]
        return bool(np.array_equal(r, np.broadcast_to(first, r.shape)))

    if rect:
        return (next(p for p in cand if ok(0, p)), next(p for p in cand if ok(1, p)))
    return next(((p, p) for p in cand if ok(0, p) and ok(1, p)), (1, 1))


def _speck_kernel(conn: Any, in_shape: tuple[int, ...], pool_sizes: tuple[int, ...],
                  rect: bool) -> tuple[np.ndarray, tuple[int, int]] | None:
    """(full OIHW kernel after taking the pooling out, pooling) of a conv or dense
    projection on a CHW input; None for other connectivity."""
    if isinstance(conn, Conv2d):
        w = np.asarray(conn.weight)
        g = int(conn.groups)
        if g > 1:  # samna's kernel holds every input channel (zeros included)
            f, cg, kh, kw = w.shape
            full = np.zeros((f, cg * g, kh, kw), dtype=w.dtype)
            fg = f // g
            for k in range(g):
                full[k * fg:(k + 1) * fg, k * cg:(k + 1) * cg] = w[k * fg:(k + 1) * fg]
            w = full
        if tuple(int(x) for x in np.broadcast_to(conn.dilation, (2,))) != (1, 1):
            return w, (1, 1)
        st = np.broadcast_to(conn.stride, (2,))
        pd = np.broadcast_to(conn.padding, (2,))
        py, px = conv_pool_factor(w, in_shape, st, pd, pool_sizes, rect=rect)
        return w[:, :, ::py, ::px], (py, px)
    if isinstance(conn, Dense) and len(in_shape) == 3:
        wt = np.asarray(conn.weight)
        w = wt.reshape(wt.shape[0], *(int(x) for x in in_shape))
        py, px = conv_pool_factor(w, in_shape, in_shape[1:], (0, 0), pool_sizes, rect=rect)
        return w[:, :, ::py, ::px], (py, px)
    return None


def speck_layer_memory(conn: Any, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                       pool_sizes: tuple[int, ...] = (2, 4, 8), *, rect: bool = False) -> int:
    """Kernel memory words of one projection into a Speck layer (sinabs ``memory_summary``).

    A convolution ``(f, c, h, w)``: ``c * 2**(ceil(log2(h*w)) + ceil(log2(f)))`` with
    ``c`` every input channel (a grouped convolution is stored whole); a dense or sparse
    layer is a convolution whose kernel covers the whole input (sinabs converts
    ``nn.Linear`` that way); pooling is done on the way to the destination core and needs
    no kernel memory. A convolution or dense projection that contains a sum pooling (see
    :func:`conv_pool_factor`; the NIR importer composes ``SumPool2d -> Conv2d`` and
    ``SumPool2d -> Flatten -> Affine``) is charged as the smaller kernel after that
    pooling, as sinabs maps the uncomposed layers. ``rect`` allows rectangular pooling
    (projections from the input: the DVS layer pools).
    """
    if isinstance(conn, (SumPool2d, AvgPool2d)):
        return 0
    if isinstance(conn, OneToOne):
        c = int(in_shape[0]) if len(in_shape) == 3 else int(np.prod(in_shape))
        return int(c * 2 ** int(_ceil_log2(1)))
    got = _speck_kernel(conn, in_shape, pool_sizes, rect)
    if got is not None:
        f, c, kh, kw = (int(x) for x in got[0].shape)
        return int(c * 2 ** (int(_ceil_log2(kh * kw)) + int(_ceil_log2(f))))
    c, hw = (in_shape[0], in_shape[1] * in_shape[2]) if len(in_shape) == 3 else \
        (int(np.prod(in_shape)), 1)
    f = int(out_shape[0]) if len(out_shape) == 3 else int(np.prod(out_shape))
    return int(c * 2 ** (int(_ceil_log2(hw)) + int(_ceil_log2(f))))


def _neuron_memory(shape: tuple[int, ...]) -> int:
    """sinabs: ``f * 2**(ceil(log2(H)) + ceil(log2(W)))``."""
    if len(shape) == 3:
        f, h, w = shape
        return int(f * 2 ** (int(_ceil_log2(h)) + int(_ceil_log2(w))))
    return int(np.prod(shape))


# =========================================================================== the view
@dataclass(frozen=True, slots=True)
class _Proj:
    name: str
    pre_row: int  # first row of pre in the source index (populations first, then inputs)
    n_pre: int
    post_pop: int
    post_off: int
    n_post: int
    kind: str  # "csr" | "dense" | "coo"
    indptr: np.ndarray | None
    indices: np.ndarray | None  # csr: post index; coo: post index
    pre: np.ndarray | None  # coo only
    n_syn: int


@dataclass(frozen=True, slots=True)
class _View:
    pops: tuple[str, ...]
    pop_off: np.ndarray
    n_neurons: int
    inputs: tuple[str, ...]
    in_off: np.ndarray  # row offsets of inputs (start at n_neurons)
    n_rows: int
    projs: tuple[_Proj, ...]
    groups: np.ndarray  # group id per population


def _expand(net: Network, proj: Any) -> Sparse:
    from .lower import conv_to_sparse, pool_to_sparse  # the lower pass's exact expansion

    in_shape = net.shape_of(proj.pre)
    if isinstance(proj.conn, Conv2d):
        return conv_to_sparse(proj.conn, in_shape)
    return pool_to_sparse(proj.conn, in_shape)


def _view(net: Network, target: Any, mix: bool | None) -> _View:
    pops = tuple(net.populations)
    if not pops:
        raise UsageError(f"network '{net.name}' has no populations to partition",
                         obj=net.name, hint="add a population")
    sizes = np.array([net.populations[p].size for p in pops], dtype=np.int64)
    pop_off = np.concatenate([[0], np.cumsum(sizes)])
    n = int(pop_off[-1])
    inputs = tuple(net.inputs)
    isz = np.array([net.inputs[i].size for i in inputs], dtype=np.int64)
    in_off = n + np.concatenate([[0], np.cumsum(isz)]).astype(np.int64)
    row_of = {p: int(pop_off[k]) for k, p in enumerate(pops)}
    row_of.update({i: int(in_off[k]) for k, i in enumerate(inputs)})
    pidx = {p: k for k, p in enumerate(pops)}
    projs = []
    for pr in net.projections.values():
        conn = pr.conn
        n_pre = net.size_of(pr.pre)
        k = pidx[pr.post]
        n_post = int(sizes[k])
        common = dict(name=pr.name, pre_row=row_of[pr.pre], n_pre=n_pre, post_pop=k,
                      post_off=int(pop_off[k]), n_post=n_post)
        if isinstance(conn, (Conv2d, SumPool2d, AvgPool2d)):
            conn = _expand(net, pr)
        if isinstance(conn, Sparse):
            projs.append(_Proj(kind="csr", indptr=np.asarray(conn.indptr),
                               indices=np.asarray(conn.indices), pre=None,
                               n_syn=int(conn.indices.shape[0]), **common))
        elif isinstance(conn, Dense):
            projs.append(_Proj(kind="dense", indptr=None, indices=None, pre=None,
                               n_syn=n_pre * n_post, **common))
        elif isinstance(conn, OneToOne):
            idx = np.arange(n_pre, dtype=np.int64)
            projs.append(_Proj(kind="coo", indptr=None, indices=idx, pre=idx,
                               n_syn=n_pre, **common))
        else:  # pragma: no cover - closed set
            raise UsageError(f"projection '{pr.name}': unknown connectivity "
                             f"{type(conn).__name__}", obj=pr.name)
    if mix is None:
        mix = target.backend != "spinnaker" and \
            target.core.synapse_accounting != "word_per_synapse"
    if mix:
        kinds: dict[str, int] = {}
        groups = np.array([kinds.setdefault(type(net.populations[p].model).__name__,
                                            len(kinds)) for p in pops], dtype=np.int64)
    else:
        groups = np.arange(len(pops), dtype=np.int64)
    return _View(pops=pops, pop_off=pop_off, n_neurons=n, inputs=inputs, in_off=in_off,
                 n_rows=int(in_off[-1]), projs=tuple(projs), groups=groups)


# =========================================================================== evaluation
def _proj_counts(pr: _Proj, neuron_core: np.ndarray, n_cores: int) -> sp.csr_matrix:
    """``(n_pre, n_cores)`` CSR: synapses of each presynaptic neuron on each core, without
    duplicates; the columns of a row are *not* necessarily sorted (no consumer needs them
    sorted: every per-core sum over the pairs meets them in source order either way)."""
    post_core = neuron_core[pr.post_off:pr.post_off + pr.n_post]
    if pr.kind == "dense":
        r = np.bincount(post_core, minlength=n_cores)
        nz = np.flatnonzero(r).astype(np.int32)
        k = nz.shape[0]
        return sp.csr_matrix(
            (np.tile(r[nz], pr.n_pre), np.tile(nz, pr.n_pre),
             np.arange(pr.n_pre + 1, dtype=np.int64) * k), shape=(pr.n_pre, n_cores))
    if pr.kind == "csr":
        pc = post_core.astype(np.int32, copy=False) if n_cores < 2**31 - 1 else post_core
        return _dedupe(pr.indptr, pc[pr.indices], pr.n_pre, n_cores)
    dst = post_core[pr.indices]
    m = sp.csr_matrix((np.ones(dst.shape[0], dtype=np.int32), (pr.pre, dst)),
                      shape=(pr.n_pre, n_cores))
    m.sum_duplicates()
    return m


def _dedupe(indptr: np.ndarray, dst: np.ndarray, n_rows: int, n_cols: int
            ) -> sp.csr_matrix:
    """``(n_rows, n_cols)`` CSR counting the entries ``dst[indptr[r]:indptr[r + 1]]`` of
    every row ``r``, without duplicates, columns within a row in no particular order.

    It is the product of that matrix (with duplicates) and the identity: scipy's SMMP
    kernel merges each row's duplicates with a dense per-row accumulator (linear, no
    per-row sort of up to 1e8 entries); called directly, as the result has at most as
    many entries as ``dst`` (no counting pass)."""
    nnz = int(dst.shape[0])
    try:
        if not USE_SPARSETOOLS:
            raise ImportError("public scipy route requested")
        from scipy.sparse._sparsetools import csr_matmat

        idx = np.int32 if max(nnz, n_rows, n_cols) < 2**31 - 1 else np.int64
        cp = np.empty(n_rows + 1, dtype=idx)
        cj = np.empty(nnz, dtype=idx)
        cx = np.empty(nnz, dtype=np.int32)
        csr_matmat(n_rows, n_cols, np.asarray(indptr, dtype=idx), np.asarray(dst, dtype=idx),
                   _ones(nnz), np.arange(n_cols + 1, dtype=idx), np.arange(n_cols, dtype=idx),
                   _ones(n_cols), cp, cj, cx)
    except (ImportError, AttributeError, TypeError, ValueError):
        m = sp.csr_matrix((_ones(nnz), dst, indptr), shape=(n_rows, n_cols))
        return (m @ sp.identity(n_cols, dtype=np.int32, format="csr")).tocsr()
    k = int(cp[-1])
    if k < 0.75 * nnz:  # many duplicates (local connectivity): do not keep the slack
        cj, cx = cj[:k].copy(), cx[:k].copy()
    return sp.csr_matrix((cx[:k], cj[:k], cp), shape=(n_rows, n_cols))


#: call scipy's compiled sparse kernels (``scipy.sparse._sparsetools``, private) directly
#: where that skips a pass over 1e8 entries; False (or a scipy without them) takes the
#: public scipy route, which gives the same partition (tested)
USE_SPARSETOOLS = True

_ONES: list[np.ndarray] = [np.ones(0, dtype=np.int32)]


def _ones(n: int) -> np.ndarray:
    """A read-only int32 array of ``n`` ones (a view of a buffer kept for the pass: the
    repair counts the same synapses many times)."""
    if _ONES[0].shape[0] < n:
        buf = np.ones(n, dtype=np.int32)
        buf.setflags(write=False)
        _ONES[0] = buf
    return _ONES[0][:n]


def _release_ones() -> None:
    _ONES[0] = np.ones(0, dtype=np.int32)


def _releasing(fn: Any) -> Any:
    """Drop the buffer of :func:`_ones` when ``fn`` returns or raises."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            _release_ones()

    return wrapper


def _pair_matrix(view: _View, neuron_core: np.ndarray, n_cores: int) -> sp.csr_matrix:
    """``(n_rows, n_cores)`` CSR over all sources: synapses per (source, core) pair (no
    duplicates; columns within a row in no particular order)."""
    by_row: dict[int, list[_Proj]] = {}
    for pr in view.projs:
        by_row.setdefault(pr.pre_row, []).append(pr)
    starts = sorted(set(int(x) for x in view.pop_off[:-1]) | set(int(x) for x in
                                                                   view.in_off[:-1]))
    sizes = {int(view.pop_off[k]): int(view.pop_off[k + 1] - view.pop_off[k])
             for k in range(len(view.pops))}
    sizes.update({int(view.in_off[k]): int(view.in_off[k + 1] - view.in_off[k])
                  for k in range(len(view.inputs))})
    simple = all(len(v) == 1 and v[0].kind == "csr" for v in by_row.values())
    if simple and sum(sizes[s] for s in starts) == view.n_rows:
        # every source feeds at most one projection, all sparse: the synapse cores of
        # all sources are gathered into one buffer and counted in one product (no
        # concatenation of per-population results afterwards)
        total = sum(pr.n_syn for pr in view.projs)
        dst = np.empty(total, dtype=np.int32 if n_cores < 2**31 - 1 else np.int64)
        indptr = np.empty(view.n_rows + 1, dtype=np.int64)
        indptr[0] = 0
        off = 0
        for s in starts:
            size = sizes[s]
            prs = by_row.get(s)
            if prs:
                pr = prs[0]
                post_core = neuron_core[pr.post_off:pr.post_off + pr.n_post].astype(
                    dst.dtype, copy=False)
                np.take(post_core, pr.indices, out=dst[off:off + pr.n_syn], mode="clip")
                indptr[s + 1:s + size + 1] = np.asarray(pr.indptr[1:], dtype=np.int64) + off
                off += pr.n_syn
            else:
                indptr[s + 1:s + size + 1] = off
        return _dedupe(indptr, dst, view.n_rows, n_cores)
    blocks = []
    for s in starts:
        mats = [_proj_counts(pr, neuron_core, n_cores) for pr in by_row.get(s, [])]
        if not mats:
            blocks.append(sp.csr_matrix((sizes[s], n_cores), dtype=np.int32))
            continue
        m = mats[0]
        for other in mats[1:]:
            m = m + other  # scipy merges rows (sorted or not) without duplicates
        blocks.append(m.tocsr())
    if len(blocks) == 1:
        return blocks[0]
    # stack the blocks by hand: one copy, no re-check of up to 1e8 entries
    ptr = [np.zeros(1, dtype=np.int64)]
    off = 0
    for b in blocks:
        ptr.append(b.indptr[1:].astype(np.int64) + off)
        off += int(b.indptr[-1])
    out = sp.csr_matrix((np.concatenate([b.data for b in blocks]),
                         np.concatenate([b.indices for b in blocks]), np.concatenate(ptr)),
                        shape=(sum(b.shape[0] for b in blocks), n_cores))
    return out


def _fill_dest(ev: _Eval) -> None:
    """Exact destination cores per core (column ``destination_cores``) from the graph."""
    g = ev.core_graph
    j = ev.names.index("destination_cores")
    ev.used[:, j] = np.diff(g.indptr) - (g.diagonal() > 0)


class _Eval:
    """Exact usage of one assignment. The core graph (messages between cores, the
    diagonal = local) is built on first use from the (source, core) pairs: repair rounds
    that only check budgets never build it (up to 1e8 pairs), unless the target limits
    destination cores."""

    __slots__ = ("used", "names", "core_sources", "input_messages", "pair_core",
                 "pair_count", "pair_src_core", "_graph", "_n_cores")

    def __init__(self, used: np.ndarray, names: tuple[str, ...], core_sources: np.ndarray,
                 input_messages: np.ndarray, pair_core: np.ndarray | None = None,
                 pair_count: np.ndarray | None = None,
                 pair_src_core: np.ndarray | None = None,
                 core_graph: sp.csr_matrix | None = None, n_cores: int = 0) -> None:
        self.used = used  # (C, len(names))
        self.names = names
        self.core_sources = core_sources
        self.input_messages = input_messages
        self.pair_core = pair_core  # core of every (source, core) pair, sources in order
        self.pair_count = pair_count  # synapses of the pair
        self.pair_src_core = pair_src_core  # core of the source neuron (neuron rows only)
        self._graph = core_graph
        self._n_cores = n_cores

    @property
    def core_graph(self) -> sp.csr_matrix:
        """``(C, C)`` CSR of messages, sorted indices, no duplicates."""
        if self._graph is None:
            self._graph = _core_graph(self.pair_src_core, self.pair_core, self._n_cores)
        return self._graph


def _core_graph(rc: np.ndarray, col: np.ndarray, n_cores: int) -> sp.csr_matrix:
    """Messages between cores from the source core and destination core of every
    (neuron, core) pair (``col`` may run on past ``rc`` into input rows)."""
    nb = rc.shape[0]
    pidx = col[:nb]
    if n_cores * n_cores <= 50_000_000:
        flat = np.bincount(rc.astype(np.int64) * n_cores + pidx,
                           minlength=n_cores * n_cores)
        # the nonzero cells in row-major order are the CSR entries (sorted, canonical)
        nz = np.flatnonzero(flat)
        indptr = np.zeros(n_cores + 1, dtype=np.int64)
        np.cumsum(np.bincount(nz // n_cores, minlength=n_cores), out=indptr[1:])
        idx = np.int32 if max(n_cores, nz.shape[0]) < 2**31 - 1 else np.int64
        core_graph = sp.csr_matrix((flat[nz], (nz % n_cores).astype(idx),
                                    indptr.astype(idx)), shape=(n_cores, n_cores))
    else:
        core_graph = _sorted_pairs_csr(rc, pidx, n_cores)
    core_graph.sum_duplicates()
    return core_graph


def _sorted_pairs_csr(rows: np.ndarray, cols: np.ndarray, n: int) -> sp.csr_matrix:
    """``(n, n)`` int64 CSR counting the pairs ``(rows[i], cols[i])``, sorted indices,
    duplicates adjacent (``sum_duplicates`` is then linear): two stable counting sorts
    (by column, then by row: a transpose), no comparison sort of up to 1e8 pairs."""
    nb = int(rows.shape[0])
    try:
        if not USE_SPARSETOOLS:
            raise ImportError("public scipy route requested")
        from scipy.sparse import _sparsetools

        idx = np.int32 if max(nb, n) < 2**31 - 1 else np.int64
        tp = np.empty(n + 1, dtype=idx)
        ti = np.empty(nb, dtype=idx)
        tx = np.empty(nb, dtype=np.int32)
        # the transpose (rows = columns of the result), entries in their given order
        _sparsetools.coo_tocsr(n, n, nb, cols.astype(idx, copy=False),
                               rows.astype(idx, copy=False), _ones(nb), tp, ti, tx)
    except (ImportError, AttributeError, TypeError, ValueError):
        g = sp.coo_matrix((np.ones(nb, dtype=np.int64), (rows, cols)), shape=(n, n)).tocsr()
        return g
    t = sp.csr_matrix((tx, ti, tp), shape=(n, n))
    del ti, tx
    g = t.tocsc()  # stable: rows of the result in order, columns sorted within each
    del t
    out = sp.csr_matrix((g.data, g.indices, g.indptr), shape=(n, n))
    out.sum_duplicates()
    out.data = out.data.astype(np.int64)
    return out


def _limits(target: Any, names: tuple[str, ...], speck: bool) -> np.ndarray:
    core = target.core

    def lim(v: Any, agg: Any = min) -> int:
        if v is None:
            return -1
        return int(agg(v)) if isinstance(v, tuple) else int(v)

    out = []
    for name in names:
        if name == "neurons":
            out.append(lim(core.neurons, max if speck else min))
        elif name == "input_axons":
            out.append(lim(core.input_axons))
        elif name == "output_axons":
            out.append(lim(core.output_axons))
        elif name == "synaptic_memory_bits":
            out.append(lim(core.synaptic_memory_bits))
        elif name == "destination_cores":
            out.append(lim(core.max_destinations))
        elif name == "kernel_memory_words":
            out.append(lim(core.synaptic_memory_words, max))
        elif name == "neuron_memory_words":
            out.append(lim(core.neurons, max))
        elif name == "bias_memory_words":
            out.append(lim(core.bias_memory_words, max))
    return np.array(out, dtype=np.int64)


def _evaluate(view: _View, neuron_core: np.ndarray, n_cores: int, target: Any) -> _Eval:
    n = view.n_neurons
    m = _pair_matrix(view, neuron_core, n_cores)
    indptr = m.indptr
    nb = int(indptr[n])
    idx = m.indices
    input_axons = np.bincount(idx, minlength=n_cores).astype(np.int64)
    # bits: every pair's row at the cost of a one-synapse row, plus the difference for
    # the (few, on spread connectivity) pairs of several synapses (integers: exact)
    data = m.data
    multi = np.flatnonzero(data != 1)
    one_bits = int(synapse_row_bits(np.ones(1, dtype=np.int64), target)[0])
    extra = synapse_row_bits(data[multi], target).astype(np.int64) - one_bits
    bits = (input_axons * one_bits + np.bincount(
        idx[multi], weights=extra, minlength=n_cores)).astype(np.int64)
    rowlen = np.diff(indptr[:n + 1])
    own = neuron_core.astype(np.int64)
    output_axons = np.bincount(own, weights=rowlen, minlength=n_cores).astype(np.int64)
    rc = np.repeat(own.astype(np.int32), rowlen)  # source core of every (neuron, core) pair
    pidx = idx[:nb]
    # pairs are distinct, so a neuron has at most one pair on its own core
    own_pair = np.flatnonzero(pidx == rc)
    has_own = np.bincount(np.searchsorted(indptr[:n + 1], own_pair, side="right") - 1,
                          minlength=n)
    remote = (rowlen - has_own) > 0
    core_sources = np.bincount(own[remote], minlength=n_cores).astype(np.int64)
    core_graph = None
    if target.core.max_destinations is not None:
        core_graph = _core_graph(rc, idx, n_cores)
        dest = np.diff(core_graph.indptr) - (core_graph.diagonal() > 0)
    else:  # no such budget: counted from the pairs when the core graph is built
        dest = np.zeros(n_cores, dtype=np.int64)
    input_messages = np.bincount(idx[nb:], minlength=n_cores).astype(np.int64)
    neurons = np.bincount(own, minlength=n_cores).astype(np.int64)
    names = BUDGET_NAMES
    used = np.stack([neurons, input_axons, output_axons, bits, dest.astype(np.int64)], axis=1)
    return _Eval(used=used, names=names, core_graph=core_graph, core_sources=core_sources,
                 input_messages=input_messages, pair_core=idx, pair_count=m.data,
                 pair_src_core=rc, n_cores=n_cores)


@_releasing
def evaluate_partition(net: Network, target: Any, neuron_core: np.ndarray,
                       *, mix_populations: bool | None = None) -> CoreUsage:
    """Exact per-core usage of a given neuron -> core assignment (for checks and tests)."""
    view = _view(net, target, mix_populations)
    nc = np.asarray(neuron_core, dtype=np.int64)
    n_cores = int(nc.max()) + 1 if nc.size else 0
    ev = _evaluate(view, nc, n_cores, target)
    _fill_dest(ev)
    lim = np.broadcast_to(_limits(target, ev.names, False), ev.used.shape).copy()
    return CoreUsage(names=ev.names, used=ev.used, limit=lim)


# =========================================================================== fit errors
def _suggest_targets(resource: str, need: int, current: str) -> str:
    """Bundled targets whose per-core ``resource`` limit is at least ``need``."""
    try:
        from ..targets import list_targets

        ok = []
        for t in list_targets():
            if t.name == current:
                continue
            limit = _limits(t, (resource,), t.topology.kind == "speck_layers")[0]
            if limit < 0 or limit >= need:
                ok.append(t.name)
        return ("; targets that would fit: " + ", ".join(ok)) if ok else ""
    except Exception:  # noqa: BLE001 - a hint must never hide the real error
        return ""


def _where(view: _View, neuron: int) -> tuple[str, int]:
    k = int(np.searchsorted(view.pop_off, neuron, side="right") - 1)
    return view.pops[k], int(neuron - view.pop_off[k])


def _single_neuron_error(view: _View, target: Any, neuron: int, name: str, need: int,
                         limit: int) -> FitError:
    pop, i = _where(view, neuron)
    words = _RESOURCE_WORDS.get(name, name)
    hint = _RESOURCE_HINTS.get(name, "change the network") + \
        _suggest_targets(name, need, target.name)
    return FitError(
        f"population '{pop}' needs {need} {words} on one core (neuron {i} alone); "
        f"{target.name} allows {limit}",
        obj=pop, rule=name, need=need, limit=limit, hint=hint)


def _too_many_cores(view: _View, target: Any, n_cores: int, used: np.ndarray | None,
                    names: tuple[str, ...] | None) -> FitError:
    total = int(target.total_cores)
    per_chip = int(target.topology.cores_per_chip)
    chips = math.ceil(n_cores / per_chip)
    binding = ""
    if used is not None and names is not None:
        lim = _limits(target, names, False)
        frac = np.where(lim > 0, used / np.maximum(lim, 1), 0).mean(axis=0)
        binding = f" (binding budget: {names[int(np.argmax(frac))]})"
    biggest = view.pops[int(np.argmax(np.diff(view.pop_off)))]
    return FitError(
        f"network needs {n_cores} cores{binding}; {target.name} has {total} "
        f"({target.n_chips} chip(s) x {per_chip})",
        obj="network", rule="cores", need=n_cores, limit=total,
        hint=f"use a system with at least {chips} chips, or shrink population '{biggest}'")


# =========================================================================== methods
def _split_over(neuron_core: np.ndarray, n_cores: int, factor: np.ndarray
                ) -> tuple[np.ndarray, int]:
    """Split every core ``c`` with ``factor[c] > 1`` into ``factor[c]`` contiguous pieces
    (by rank of its neurons in global order); other cores are kept."""
    order = np.argsort(neuron_core, kind="stable")
    sizes = np.bincount(neuron_core, minlength=n_cores)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0]) - np.repeat(starts, sizes)
    f = np.maximum(factor.astype(np.int64), 1)
    f = np.minimum(f, np.maximum(sizes, 1))
    piece = (rank * f[neuron_core]) // np.maximum(sizes[neuron_core], 1)
    base = np.concatenate([[0], np.cumsum(f)[:-1]])
    new = base[neuron_core] + piece
    return new.astype(np.int64), int(f.sum())


def _compact(neuron_core: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber cores 0.. in order of their first neuron."""
    uniq, first = np.unique(neuron_core, return_index=True)
    order = np.argsort(first, kind="stable")
    remap = np.empty(int(uniq.max()) + 1 if uniq.size else 0, dtype=np.int64)
    remap[uniq[order]] = np.arange(uniq.shape[0])
    return remap[neuron_core], int(uniq.shape[0])


def _overload(ev: _Eval, lim: np.ndarray) -> np.ndarray:
    has = lim > 0
    ratio = np.where(has[None, :], ev.used / np.maximum(lim, 1)[None, :], 0.0)
    return ratio.max(axis=1)


def _repair(view: _View, target: Any, neuron_core: np.ndarray, n_cores: int,
            lim: np.ndarray, ev: _Eval | None, stats: dict[str, Any], max_rounds: int = 40,
            plan: bool = False) -> tuple[np.ndarray, int, _Eval]:
    """Split over-budget cores until every core fits; raise FitError for one neuron."""
    rounds = 0
    while True:
        if ev is None:
            ev = _evaluate(view, neuron_core, n_cores, target)
        over = (lim[None, :] >= 0) & (ev.used > lim[None, :])
        bad = np.flatnonzero(over.any(axis=1))
        if bad.size == 0:
            break
        single = bad[ev.used[bad, 0] <= 1]
        if single.size:
            c = int(single[0])
            j = int(np.flatnonzero(over[c])[0])
            neuron = int(np.flatnonzero(neuron_core == c)[0])
            raise _single_neuron_error(view, target, neuron, ev.names[j],
                                       int(ev.used[c, j]), int(lim[j]))
        if rounds >= max_rounds:  # pragma: no cover - halving converges in log2 steps
            raise FitError("partition repair did not converge", obj="network",
                           rule="partition", hint="report this network")
        ratio = _overload(ev, lim)
        factor = np.ones(n_cores, dtype=np.int64)
        factor[bad] = np.maximum(2, np.ceil(ratio[bad] * 1.2)).astype(np.int64)
        if plan:
            factor = _plan_split(ev, lim, factor, stats)
        neuron_core, n_cores = _split_over(neuron_core, n_cores, factor)
        if n_cores > 4 * int(target.total_cores) + 64:
            raise _too_many_cores(view, target, n_cores, None, None)
        ev = None
        rounds += 1
    stats["repair_rounds"] = rounds
    return neuron_core, n_cores, ev


class _SplitModel:
    """What :func:`_predict_split` needs from the exact (source, core) pairs of one count,
    aggregated once (O(pairs)); each prediction is then O(cores + pairs of >= 2 synapses).

    Pairs of one synapse (most, on sparse networks) are counted per core; only pairs of
    several synapses are kept one by one."""

    def __init__(self, ev: _Eval, dest_limited: bool) -> None:
        c_n = ev.used.shape[0]
        self.c_n = c_n
        col, cnt, src = ev.pair_core, ev.pair_count, ev.pair_src_core
        self.exact = col is not None and cnt is not None and src is not None
        if self.exact:
            multi = np.flatnonzero(cnt > 1)
            self.ones = np.bincount(col, minlength=c_n).astype(np.float64) - \
                np.bincount(col[multi], minlength=c_n)
            self.m_col = col[multi].astype(np.int64)
            self.m_cnt = cnt[multi].astype(np.float64)
            nb = src.shape[0]
            mn = multi[multi < nb]
            self.n_src = src[mn].astype(np.int64)
            self.n_col = col[mn].astype(np.int64)
            self.n_cnt = cnt[mn].astype(np.float64)
        self.dest = dest_limited
        if dest_limited:
            cg = ev.core_graph.tocoo()
            off = cg.row != cg.col
            self.g_row, self.g_col = cg.row[off], cg.col[off]
            self.g_msg = cg.data[off].astype(np.float64)


def _predict_split(ev: _Eval, model: _SplitModel, f: np.ndarray) -> np.ndarray:
    """Predicted usage (C, budgets) of each piece of every core when core ``c`` is cut
    into ``f[c]`` contiguous pieces, from the exact (source, core) pairs of ``ev``.

    Output axons: a pair of ``k`` synapses onto a cut core becomes at most ``min(f, k)``
    pairs (an upper bound), shared evenly by the source core's pieces. Input axons: a
    source with ``k`` synapses on a core cut in ``f`` reaches a given piece with
    probability ``1 - (1 - 1/f)**k`` (synapses spread evenly); memory follows the input
    axons; destinations: ``min(f, messages)`` per destination core.
    """
    used = ev.used.astype(np.float64)
    out = used.copy()
    ff = f.astype(np.float64)
    c_n = model.c_n
    out[:, 0] = np.ceil(used[:, 0] / ff)
    if model.exact:
        inp = model.ones / ff
        fm = ff[model.m_col]
        inp += np.bincount(model.m_col, weights=1.0 - (1.0 - 1.0 / fm) ** model.m_cnt,
                           minlength=c_n)
        out[:, 1] = inp
        out[:, 3] = np.where(used[:, 1] > 0, used[:, 3] * inp / np.maximum(used[:, 1], 1),
                             0.0)
        extra = np.bincount(model.n_src, weights=np.minimum(ff[model.n_col], model.n_cnt)
                            - 1.0, minlength=c_n)
        out[:, 2] = (used[:, 2] + extra) / ff
    else:
        out[:, 1:4] = used[:, 1:4] / ff[:, None]
    if model.dest:
        dst = np.bincount(model.g_row, weights=np.minimum(ff[model.g_col], model.g_msg),
                          minlength=c_n)
        out[:, 4] = np.ceil(dst / ff)
    return out


def _plan_split(ev: _Eval, lim: np.ndarray, factor: np.ndarray, stats: dict[str, Any],
                rounds: int = 12, margin: float = 0.95) -> np.ndarray:
    """Raise the split factors until the predicted usage of every piece is within
    ``margin`` of every budget (pieces are not all average), so that one repair round
    usually suffices; the exact count after the split decides."""
    f = factor.copy()
    neurons = np.maximum(ev.used[:, 0], 1)
    has = lim > 0
    model = _SplitModel(ev, dest_limited=bool(lim[4] >= 0))
    cut = f > 1  # only cores cut anyway are cut finer (the model is pessimistic for local
    top = np.minimum(neurons, 2 * f)  # connectivity), at most to twice the pieces
    for it in range(rounds):
        pred = _predict_split(ev, model, f)
        ratio = np.where(has[None, :], pred / np.maximum(lim, 1)[None, :], 0.0).max(axis=1)
        over = cut & (ratio > margin) & (f < top)
        stats["split_plan_iterations"] = it + 1
        if not over.any():
            break
        f[over] = np.minimum(top[over], np.maximum(
            f[over] + 1, np.ceil(f[over] * ratio[over] / margin))).astype(np.int64)
    return f


def _sequential(view: _View, cap: int) -> tuple[np.ndarray, int]:
    nc = np.empty(view.n_neurons, dtype=np.int64)
    base = 0
    for k in range(len(view.pops)):
        a, b = int(view.pop_off[k]), int(view.pop_off[k + 1])
        nc[a:b] = base + np.arange(b - a) // cap
        base += -(-(b - a) // cap)
    return nc, base


def _blocks(view: _View, cap: int, max_blocks: int) -> tuple[np.ndarray, np.ndarray,
                                                             np.ndarray, int]:
    """Contiguous neuron blocks: (block of neuron, block sizes, block group, n_blocks)."""
    n = view.n_neurons
    b = max(1, -(-n // max_blocks))
    b = min(b, max(1, cap // 16))
    sizes = np.diff(view.pop_off)
    nblk = -(-sizes // b)
    boff = np.concatenate([[0], np.cumsum(nblk)])
    block = np.empty(n, dtype=np.int64)
    for k in range(len(view.pops)):
        a, e = int(view.pop_off[k]), int(view.pop_off[k + 1])
        block[a:e] = boff[k] + np.arange(e - a) // b
    n_blocks = int(boff[-1])
    bsize = np.bincount(block, minlength=n_blocks)
    bgroup = np.repeat(view.groups[: len(view.pops)], nblk)
    return block, bsize, bgroup, n_blocks


def _block_graph(view: _View, block: np.ndarray, bsize: np.ndarray, n_blocks: int,
                 rng: np.random.Generator, sample: int) -> sp.csr_matrix:
    """Symmetric block graph (weights ``min(synapses, |A|)``, float), from all synapses or
    a seeded sample of them."""
    total = sum(pr.n_syn for pr in view.projs if pr.pre_row < view.n_neurons)
    rows, cols, wts = [], [], []
    for pr in view.projs:
        if pr.pre_row >= view.n_neurons or pr.n_syn == 0:
            continue  # inputs are not placed
        quota = pr.n_syn if total <= sample else max(1, int(sample * pr.n_syn / total))
        if pr.kind == "dense":
            pb = block[pr.pre_row:pr.pre_row + pr.n_pre]
            qb = block[pr.post_off:pr.post_off + pr.n_post]
            pu, pc = np.unique(pb, return_counts=True)
            qu, qc = np.unique(qb, return_counts=True)
            r, c = np.meshgrid(pu, qu, indexing="ij")
            rows.append(r.ravel())
            cols.append(c.ravel())
            wts.append(np.outer(pc, qc).ravel().astype(np.float64))
            continue
        if quota >= pr.n_syn:
            s = None
            scale = 1.0
        else:
            s = np.sort(rng.choice(pr.n_syn, size=quota, replace=False))
            scale = pr.n_syn / quota
        if pr.kind == "csr":
            if s is None:
                pre = np.repeat(np.arange(pr.n_pre, dtype=np.int64), np.diff(pr.indptr))
                post = pr.indices
            else:
                pre = np.searchsorted(pr.indptr, s, side="right") - 1
                post = pr.indices[s]
        else:
            pre, post = (pr.pre, pr.indices) if s is None else (pr.pre[s], pr.indices[s])
        rows.append(block[pr.pre_row + pre])
        cols.append(block[pr.post_off + np.asarray(post, dtype=np.int64)])
        wts.append(np.full(rows[-1].shape[0], scale))
    if not rows:
        return sp.csr_matrix((n_blocks, n_blocks))
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    w = np.concatenate(wts)
    off = r != c
    r, c, w = r[off], c[off], w[off]
    g = sp.coo_matrix((w, (r, c)), shape=(n_blocks, n_blocks)).tocsr()
    # a source neuron sends at most one message to the core holding B
    rr = np.repeat(np.arange(n_blocks), np.diff(g.indptr))
    g.data = np.minimum(g.data, bsize[rr].astype(np.float64))
    g = (g + g.T).tocsr()
    return g


def _metis(g: sp.csr_matrix, vw: np.ndarray, k: int, seed: int, max_edges: int,
           cache: dict[str, Any] | None = None) -> np.ndarray:
    """pymetis k-way on a symmetric weighted graph; returns the part of every vertex.

    ``cache`` (one dict per graph ``g``) keeps the pruned graph and its integer edge
    weights between calls on the same graph (the re-weighting rounds change only the
    vertex weights)."""
    n = g.shape[0]
    if k <= 1 or n <= 1:
        return np.zeros(n, dtype=np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    import pymetis

    if cache is not None and "adjacency" in cache:
        indptr, indices, w = cache["adjacency"]
    else:
        if g.nnz > max_edges:  # keep the heaviest edges of every vertex, then symmetrise
            keep = max(4, max_edges // max(n, 1))
            rows = np.repeat(np.arange(n), np.diff(g.indptr))
            order = np.lexsort((-g.data, rows))
            rank = np.arange(order.shape[0]) - np.repeat(g.indptr[:-1], np.diff(g.indptr))
            sel = order[rank < keep]
            h = sp.csr_matrix((g.data[sel], (rows[sel], g.indices[sel])), shape=g.shape)
            g = h.maximum(h.T).tocsr()
        w = g.data
        if w.size:
            factor = min(1e6 / max(float(w.max()), 1e-12), 1e9 / max(float(w.sum()), 1e-12))
            w = np.maximum(1, np.rint(w * factor)).astype(np.int64)
        indptr, indices = g.indptr.astype(np.int64), g.indices.astype(np.int64)
        if cache is not None:
            cache["adjacency"] = (indptr, indices, w)
    opts = pymetis.Options(seed=int(seed) % (2**31 - 1), ufactor=30)
    _, parts = pymetis.part_graph(
        int(k), adjacency=pymetis.CSRAdjacency(indptr, indices),
        vweights=np.maximum(vw, 1).astype(np.int64), eweights=w if w.size else None,
        options=opts)
    return np.asarray(parts, dtype=np.int64)


def _sample_usage(view: _View, nc: np.ndarray, n_cores: int, target: Any,
                  cores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact usage ``(len(cores), budgets)`` of a few ``cores`` (sorted) only
    (destination cores left 0): the synapses onto them and the synapses of their
    neurons, found with one gather over every synapse and no sort of any of them.

    Returns the usage and the probed core (index into ``cores``) and synapse count of
    every (source, probed core) pair, in the order of (source, core)."""
    n = view.n_neurons
    k = len(cores)
    cores = np.asarray(cores, dtype=np.int64)
    if k > 1 and not np.all(np.diff(cores) > 0):
        raise ValueError("_sample_usage needs sorted, distinct cores")
    where = np.full(n_cores, -1, dtype=np.int64)
    where[cores] = np.arange(k)
    ins = where >= 0
    # the neurons of the probed cores, numbered 0.. in order (rows of the output bitmap)
    in_probe = ins[nc]
    probe_rows = np.flatnonzero(in_probe)
    local = np.full(n, -1, dtype=np.int64)
    local[probe_rows] = np.arange(probe_rows.shape[0])
    n_local = int(probe_rows.shape[0])
    # input side: synapses per (source row, probed core), counted over a (row, probe)
    # table: its nonzero entries in order are the pairs in (source, core) order
    acc = np.zeros(view.n_rows * k, dtype=np.int64)
    # output side: a bitmap of (probed neuron, destination core) pairs
    use_bitmap = n_local * n_cores <= 400_000_000
    seen = np.zeros(n_local * n_cores if use_bitmap else 0, dtype=bool)
    k_out: list[np.ndarray] = []
    nc32 = nc if nc.dtype == np.int32 else nc.astype(np.int32)
    for pr in view.projs:
        post_core = nc32[pr.post_off:pr.post_off + pr.n_post]
        src_pop = pr.pre_row < n
        pre_in_s = in_probe[pr.pre_row:pr.pre_row + pr.n_pre] if src_pop else None
        if pr.kind == "dense":
            rows = np.arange(pr.n_pre, dtype=np.int64)
            r = np.bincount(post_core, minlength=n_cores)
            cs = np.flatnonzero((r > 0) & ins)
            keys = ((pr.pre_row + rows)[:, None] * k + where[cs][None, :]).ravel()
            acc[keys] += np.tile(r[cs], pr.n_pre)  # keys are distinct
            if src_pop:
                cz = np.flatnonzero(r)
                lp = local[pr.pre_row + rows[pre_in_s]]
                kk = (lp[:, None] * n_cores + cz[None, :]).ravel()
                if use_bitmap:
                    seen[kk] = True
                else:
                    k_out.append(kk)
            continue
        post_in = ins[post_core]
        pos = np.flatnonzero(post_in[pr.indices])
        if pr.kind == "csr":
            pre = np.searchsorted(pr.indptr, pos, side="right") - 1
        else:
            pre = pr.pre[pos]
        dst = post_core[pr.indices[pos]]
        acc += np.bincount((pr.pre_row + pre) * k + where[dst], minlength=acc.shape[0])
        if src_pop:
            if pr.kind == "csr":
                rs = np.flatnonzero(pre_in_s)
                ln = np.diff(pr.indptr)[rs]
                from .place import _ranges

                at = _ranges(pr.indptr[rs], ln)
                pre_o = np.repeat(rs, ln)
            else:
                at = np.flatnonzero(pre_in_s[pr.pre])
                pre_o = pr.pre[at]
            kk = local[pr.pre_row + pre_o] * n_cores + post_core[pr.indices[at]]
            if use_bitmap:
                seen[kk] = True
            else:
                k_out.append(kk)
    used = np.zeros((k, len(BUDGET_NAMES)), dtype=np.int64)
    used[:, 0] = np.bincount(nc, minlength=n_cores)[cores]
    nz = np.flatnonzero(acc)
    cnt = acc[nz]
    col = nz % k
    used[:, 1] = np.bincount(col, minlength=k)
    used[:, 3] = np.bincount(col, weights=synapse_row_bits(cnt, target), minlength=k)
    if use_bitmap:
        per_neuron = np.count_nonzero(seen.reshape(n_local, n_cores), axis=1) \
            if n_local and n_cores else np.zeros(n_local, dtype=np.int64)
        used[:, 2] = np.bincount(where[nc[probe_rows]], weights=per_neuron, minlength=k)
    elif k_out:
        uo = np.unique(np.concatenate(k_out))
        used[:, 2] = np.bincount(where[nc[probe_rows[uo // n_cores]]], minlength=k)
    return used, col, cnt


def _probe_factor(used: np.ndarray, col: np.ndarray, cnt: np.ndarray, lim: np.ndarray,
                  margin: float = 0.9) -> int:
    """Smallest number of pieces (the same for every probed core) whose predicted usage
    is within ``margin`` of every budget (pieces vary about the prediction; a repair
    round costs a full count): input axons by the spread model of
    :func:`_predict_split` (distinct sources saturate on large cores, so the pieces
    need more than the overload suggests), memory following them, the rest even."""
    k = len(used)
    cntf = cnt.astype(np.float64)
    has = lim > 0

    def worst(f: int) -> float:
        reach = np.bincount(col, weights=1.0 - (1.0 - 1.0 / f) ** cntf, minlength=k)
        pred = used.astype(np.float64) / f
        pred[:, 0] = np.ceil(used[:, 0] / f)
        pred[:, 1] = reach
        pred[:, 3] = np.where(used[:, 1] > 0, used[:, 3] * reach / np.maximum(used[:, 1], 1),
                              0.0)
        return float(np.where(has[None, :], pred / np.maximum(lim, 1)[None, :], 0.0).max())

    lo, hi = 1, 2
    top = int(max(used[:, 0].max(initial=1), 1))
    while hi < top and worst(hi) > margin:
        lo, hi = hi, min(2 * hi, top)
    while hi - lo > 1:  # worst(f) falls as f grows
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if worst(mid) > margin else (lo, mid)
    return hi


def _metis_partition(view: _View, target: Any, cap: int, lim: np.ndarray, seed: int,
                     max_blocks: int, sample: int, rounds: int, max_edges: int,
                     stats: dict[str, Any]) -> tuple[np.ndarray, int, _Eval | None]:
    rng = np.random.default_rng(seed)
    block, bsize, bgroup, n_blocks = _blocks(view, cap, max_blocks)
    t0 = time.perf_counter()
    g = _block_graph(view, block, bsize, n_blocks, rng,
                     min(sample, 64 * n_blocks + 100_000))
    stats["blocks"] = n_blocks
    stats["block_size"] = int(bsize.max()) if bsize.size else 0
    stats["block_graph_edges"] = int(g.nnz)
    stats["block_graph_s"] = round(time.perf_counter() - t0, 3)
    weight = bsize.astype(np.float64)  # load of each block in units of "neurons"
    groups = np.unique(bgroup)
    ev = None
    nc = np.zeros(view.n_neurons, dtype=np.int64)
    n_cores = 0
    t0 = time.perf_counter()
    subs: dict[Any, tuple[sp.csr_matrix, dict[str, Any]]] = {}  # per group, all rounds
    for r in range(rounds):
        part = np.empty(n_blocks, dtype=np.int64)
        base = 0
        for gid in groups:
            sel = np.flatnonzero(bgroup == gid)
            k = max(1, math.ceil(weight[sel].sum() * 1.03 / cap))
            if gid not in subs:
                subs[gid] = (g[sel][:, sel].tocsr() if groups.size > 1 else g, {})
            sub, cache = subs[gid]
            vw = np.rint(weight[sel] * 16).astype(np.int64)
            tm = time.perf_counter()
            part[sel] = base + _metis(sub, vw, k, seed + 7919 * r, max_edges, cache)
            stats["metis_call_s"] = round(stats.get("metis_call_s", 0)
                                          + time.perf_counter() - tm, 3)
            base += k
        nc, n_cores = _compact(part[block])
        if rounds == 1 and n_cores > 1:
            # large network: a few cores counted exactly first; if they are far over a
            # budget (random fan-in against input axons), every core is cut by their
            # overload at once and the exact count of METIS's parts is skipped
            probe = np.sort(rng.choice(n_cores, min(8, n_cores), replace=False))
            su, s_col, s_cnt = _sample_usage(view, nc, n_cores, target, probe)
            has = lim > 0
            sr = np.where(has[None, :], su / np.maximum(lim, 1)[None, :], 0.0)[:, 1:]
            stats["probe_overload"] = round(float(sr.max()), 3)
            # only for spread connectivity (few synapses per (source, core) pair): the
            # spread model is far too pessimistic for local connectivity, whose sources
            # reach few contiguous pieces
            spread = s_cnt.size > 0 and float(s_cnt.mean()) <= 4.0
            stats["probe_synapses_per_pair"] = round(float(s_cnt.mean()), 3) \
                if s_cnt.size else 0.0
            if sr.max() > 4.0 and spread:
                sizes = np.bincount(nc, minlength=n_cores)
                f = np.minimum(sizes, _probe_factor(su, s_col, s_cnt, lim))
                nc, n_cores = _split_over(nc, n_cores, f)
                stats["probe_split"] = int(f.max())
                stats["metis_rounds"] = r + 1
                ev = None
                break
        ev = _evaluate(view, nc, n_cores, target)
        ratio = _overload(ev, lim)
        stats["metis_rounds"] = r + 1
        other = np.delete(ev.used / np.maximum(lim, 1), 0, axis=1)[:, lim[1:] >= 0]
        if other.size == 0 or other.max() <= 1.0 or r == rounds - 1:
            break  # neuron overflow from METIS's imbalance is left to the repair
        if np.median(other.max(axis=1)) > 8.0:  # far over everywhere (random fan-in vs
            break  # input axons): re-weighting cannot help; the repair cuts every core
        # blocks of an overloaded core weigh its overload (budgets other than neurons)
        core_of_block = nc[np.searchsorted(block, np.arange(n_blocks))]
        neurons_c = np.maximum(ev.used[:, 0], 1)
        load = np.maximum(ratio, ev.used[:, 0] / cap) * cap / neurons_c * 1.1
        weight = np.maximum(weight, bsize * load[core_of_block])
    stats["metis_s"] = round(time.perf_counter() - t0, 3)
    return nc, n_cores, ev


# =========================================================================== Speck
def _speck_partition(net: Network, view: _View, target: Any, seed: int) -> Partition:
    npop = len(view.pops)
    kernel = np.zeros(npop, dtype=np.int64)
    neuron_mem = np.zeros(npop, dtype=np.int64)
    bias = np.zeros(npop, dtype=np.int64)
    dests: list[set[int]] = [set() for _ in range(npop)]
    pidx = {p: k for k, p in enumerate(view.pops)}
    for k, p in enumerate(view.pops):
        pop = net.populations[p]
        neuron_mem[k] = _neuron_memory(pop.shape)
        b = getattr(pop.model, "bias", 0.0)
        if np.any(np.asarray(b) != 0):
            bias[k] = pop.shape[0] if len(pop.shape) == 3 else pop.size
    conv = getattr(target, "convolution", None)
    pool_sizes = tuple(conv.pooling_sizes) if conv is not None else (2, 4, 8)
    pooled: dict[str, int] = {}
    pooled_conv: dict[str, list[int]] = {}
    for pr in net.projections.values():
        k = pidx[pr.post]
        in_shape = net.shape_of(pr.pre)
        rect = pr.pre in net.inputs
        kernel[k] += speck_layer_memory(pr.conn, in_shape, net.shape_of(pr.post), pool_sizes,
                                        rect=rect)
        got = _speck_kernel(pr.conn, in_shape, pool_sizes, rect)
        if got is not None and got[0].shape[2] != got[0].shape[3]:
            kh, kw = (int(x) for x in got[0].shape[2:])
            raise FitError(
                f"layer '{pr.post}' needs a {kh} x {kw} kernel (projection '{pr.name}'); "
                f"{target.name} kernels are square", obj=pr.name, rule="square kernel",
                need=[kh, kw], limit="square",
                hint="a dense layer's kernel is its (pooled) input map: make the map square")
        if got is not None and got[1] != (1, 1):
            if isinstance(pr.conn, Dense) and got[1][0] == got[1][1]:
                pooled[pr.name] = got[1][0]
            else:
                pooled_conv[pr.name] = list(got[1])
        if pr.pre in pidx and pidx[pr.pre] != k:
            dests[pidx[pr.pre]].add(k)
    n_dest = np.array([len(d) for d in dests], dtype=np.int64)
    names = _SPECK_NAMES
    used = np.stack([np.diff(view.pop_off), kernel, neuron_mem, bias, n_dest], axis=1)
    lim = _limits(target, names, True)
    for k in range(npop):
        for j, name in enumerate(names):
            if name == "neurons":
                continue
            if lim[j] >= 0 and used[k, j] > lim[j]:
                hint = {
                    "kernel_memory_words": "use fewer input or output channels or a "
                                           "smaller kernel",
                    "neuron_memory_words": "use fewer channels, a larger stride or pooling "
                                           "before it (smaller feature map)",
                    "bias_memory_words": "use fewer channels or no bias",
                    "destination_cores": "send the layer to at most "
                                         f"{lim[j]} layers (merge or chain them)",
                }[name]
                raise FitError(
                    f"layer '{view.pops[k]}' needs {int(used[k, j])} "
                    f"{_RESOURCE_WORDS[name]}; the largest {target.name} core allows "
                    f"{int(lim[j])}", obj=view.pops[k], rule=name, need=int(used[k, j]),
                    limit=int(lim[j]), hint=hint)
    if npop > target.total_cores:
        raise FitError(
            f"network has {npop} layers; {target.name} has {target.total_cores} cores "
            "(one layer per core)", obj="network", rule="cores", need=npop,
            limit=int(target.total_cores), hint="merge or remove layers")
    neuron_core = np.repeat(np.arange(npop, dtype=np.int32), np.diff(view.pop_off))
    src, dst = [], []
    msgs = []
    for pr in net.projections.values():
        if pr.pre in pidx and pidx[pr.pre] != pidx[pr.post]:
            src.append(pidx[pr.pre])
            dst.append(pidx[pr.post])
            msgs.append(net.size_of(pr.pre))
    e = sp.csr_matrix((np.asarray(msgs, dtype=np.int64), (np.asarray(src, dtype=np.int64),
                                                          np.asarray(dst, dtype=np.int64))),
                      shape=(npop, npop))
    e.data = np.minimum(e.data, np.diff(view.pop_off)[np.repeat(np.arange(npop),
                                                                 np.diff(e.indptr))])
    coo = e.tocoo()
    order = np.lexsort((coo.col, coo.row))
    sources = np.where(n_dest > 0, np.diff(view.pop_off), 0)
    in_msgs = np.zeros(npop, dtype=np.int64)
    for pr in net.projections.values():
        if pr.pre in net.inputs:
            in_msgs[pidx[pr.post]] += net.size_of(pr.pre)
    return Partition(
        target=target.name, populations=view.pops, pop_offsets=view.pop_off.copy(),
        neuron_core=neuron_core, n_cores=npop,
        usage=CoreUsage(names=names, used=used, limit=np.broadcast_to(lim, used.shape).copy()),
        edge_src=coo.row[order].astype(np.int32), edge_dst=coo.col[order].astype(np.int32),
        edge_messages=coo.data[order].astype(np.int64), core_sources=sources.astype(np.int64),
        input_messages=in_msgs, messages=int(coo.data.sum()), local_messages=0,
        method="layers", seed=int(seed),
        stats={**({"pooled_dense_projections": pooled} if pooled else {}),
               **({"pooled_conv_projections": pooled_conv} if pooled_conv else {})})


# =========================================================================== the pass
@_releasing
def partition(
    net: Network,
    target: Any,
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
    view = _view(net, target, mix_populations)
    if target.topology.kind == "speck_layers" or \
            target.core.synapse_accounting == "speck_kernel":
        part = _speck_partition(net, view, target, seed)
        part.stats["time_s"] = round(time.perf_counter() - t_start, 3)
        return part
    lim = _limits(target, BUDGET_NAMES, False)
    cap = int(lim[0])
    lower_bound = sum(-(-int(s) // cap) for s in np.diff(view.pop_off)) \
        if mix_populations is False else -(-view.n_neurons // cap)
    if lower_bound > target.total_cores:
        raise _too_many_cores(view, target, lower_bound, None, None)
    stats: dict[str, Any] = {}

    def run_sequential() -> tuple[np.ndarray, int, _Eval, str]:
        nc, k = _sequential(view, cap)
        nc, k, ev = _repair(view, target, nc, k, lim, None, stats)
        return nc, k, ev, "sequential"

    if method == "sequential":
        nc, k, ev, used_method = run_sequential()
    else:
        n_syn = sum(pr.n_syn for pr in view.projs)
        rounds = metis_rounds if n_syn <= compare_below else 1  # large: repair directly
        nc, k, ev = _metis_partition(view, target, cap, lim, seed, max_blocks,
                                     sample_synapses, rounds, max_block_edges, stats)
        nc, k, ev = _repair(view, target, nc, k, lim, ev, stats,
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
        raise _too_many_cores(view, target, k, ev.used, ev.names)
    # number cores by their first neuron (ids follow the network order)
    nc_new, k = _compact(nc)
    old_of_new = np.empty(k, dtype=np.int64)
    old_of_new[nc_new] = nc
    inv = np.empty_like(old_of_new)
    inv[old_of_new] = np.arange(k)
    if ev._graph is None and ev.pair_src_core is not None:
        # the core graph, built once, directly in the new numbering
        rc = ev.pair_src_core
        inv_s = inv.astype(np.int32) if k < 2**31 - 1 else inv
        perm = _core_graph(inv_s[rc], inv_s[ev.pair_core[:rc.shape[0]]], k)
        del inv_s
        used = ev.used[old_of_new]
        j = ev.names.index("destination_cores")
        used[:, j] = np.diff(perm.indptr) - (perm.diagonal() > 0)
    else:
        # renumber the core graph: permute its rows, relabel and re-sort its columns
        # (per row; no global sort of the up to 1e8 edges)
        _fill_dest(ev)
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
        local_messages=local_messages, method=used_method,
        seed=int(seed), stats=stats)
