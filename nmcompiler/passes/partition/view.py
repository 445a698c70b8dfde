"""The partitioner's array view of a network: every population and projection as
offsets and index arrays (no Python object per neuron or synapse)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nmcompiler.ir.connectivity import AvgPool2d, Conv2d, Dense, OneToOne, Sparse, SumPool2d
from nmcompiler.ir.errors import UsageError
from nmcompiler.ir.expand import grid_to_sparse
from nmcompiler.ir.network import Network

from ...targets import Target


# =========================================================================== the view
@dataclass(frozen=True, slots=True)
class Proj:
    """One projection in the view: offsets of its pre and post rows and its index arrays."""
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
class View:
    """The network as arrays: population and input offsets, projections, groups."""
    pops: tuple[str, ...]
    pop_off: np.ndarray
    n_neurons: int
    inputs: tuple[str, ...]
    in_off: np.ndarray  # row offsets of inputs (start at n_neurons)
    n_rows: int
    projs: tuple[Proj, ...]
    groups: np.ndarray  # group id per population
    ones: Ones = field(default_factory=lambda: Ones())  # workspace of this run


def _expand(net: Network, proj: Any) -> Sparse:
    return grid_to_sparse(proj.conn, net.shape_of(proj.pre))  # the lower pass's expansion


def build_view(net: Network, target: Target, mix: bool | None) -> View:
    """The array view of ``net`` for partitioning on ``target``."""
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
            projs.append(Proj(kind="csr", indptr=np.asarray(conn.indptr),
                               indices=np.asarray(conn.indices), pre=None,
                               n_syn=int(conn.indices.shape[0]), **common))
        elif isinstance(conn, Dense):
            projs.append(Proj(kind="dense", indptr=None, indices=None, pre=None,
                               n_syn=n_pre * n_post, **common))
        elif isinstance(conn, OneToOne):
            idx = np.arange(n_pre, dtype=np.int64)
            projs.append(Proj(kind="coo", indptr=None, indices=idx, pre=idx,
                               n_syn=n_pre, **common))
        else:  # pragma: no cover - closed set
            raise UsageError(f"projection '{pr.name}': unknown connectivity "
                             f"{type(conn).__name__}", obj=pr.name)
    if mix is None:
        mix = target.family.mixes_populations(target)
    if mix:
        kinds: dict[str, int] = {}
        groups = np.array([kinds.setdefault(type(net.populations[p].model).__name__,
                                            len(kinds)) for p in pops], dtype=np.int64)
    else:
        groups = np.arange(len(pops), dtype=np.int64)
    return View(pops=pops, pop_off=pop_off, n_neurons=n, inputs=inputs, in_off=in_off,
                 n_rows=int(in_off[-1]), projs=tuple(projs), groups=groups)

class Ones:
    """A read-only int32 array of ``n`` ones on demand: views of one buffer that grows,
    owned by one partition run (the repair counts the same synapses many times)."""

    def __init__(self) -> None:
        self._buf = np.ones(0, dtype=np.int32)

    def __call__(self, n: int) -> np.ndarray:
        """A read-only array of ``n`` ones."""
        if self._buf.shape[0] < n:
            buf = np.ones(n, dtype=np.int32)
            buf.setflags(write=False)
            self._buf = buf
        return self._buf[:n]


def plain_ones(n: int) -> np.ndarray:
    """A fresh int32 array of ``n`` ones."""
    return np.ones(n, dtype=np.int32)
