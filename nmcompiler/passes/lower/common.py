"""Helpers shared by the steps of the lower pass."""

from __future__ import annotations

from typing import Any

import numpy as np

from nmcompiler.ir.connectivity import (
    Dense,
    OneToOne,
    Sparse,
)
from nmcompiler.ir.expand import grid_to_sparse, projection_coo
from nmcompiler.ir.network import Network, Projection

SOURCE = "\x00source"


# =========================================================================== helpers
def delay_range(proj: Projection) -> tuple[int, int]:
    """(smallest, largest) total delay of the synapses of ``proj``."""
    d = int(proj.delay)
    extra = getattr(proj.conn, "delays", None)
    if extra is not None and np.size(extra):
        return d + int(np.min(extra)), d + int(np.max(extra))
    return d, d


def projection_synapses(net: Network, proj: Projection) -> tuple[np.ndarray, ...]:
    """(pre, post, weight, extra delays or None) of a projection (zeros of a OneToOne
    kept; :func:`nmcompiler.ir.expand.projection_coo`)."""
    return tuple(projection_coo(proj.conn, net.shape_of(proj.pre), keep_zeros=True))


def expand_grid(net: Network, proj: Projection) -> Sparse:
    """The conv/pool projection ``proj`` as an explicit sparse matrix."""
    return grid_to_sparse(proj.conn, net.shape_of(proj.pre))  # type: ignore[arg-type]


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base#k`` for the first ``k`` not in ``taken``; adds it to ``taken``."""
    name, k = base, 2
    while name in taken:
        name, k = f"{base}#{k}", k + 1
    taken.add(name)
    return name




def with_delays(conn: Any, delays: np.ndarray | None) -> Any:
    """A copy of connectivity ``conn`` with its delays replaced by ``delays``."""
    if isinstance(conn, Dense):
        return Dense(weight=conn.weight, delays=delays)
    if isinstance(conn, Sparse):
        return Sparse(indptr=conn.indptr, indices=conn.indices, weight=conn.weight,
                      n_post=conn.n_post, delays=delays)
    if isinstance(conn, OneToOne):
        return OneToOne(weight=conn.weight, delays=delays)
    return conn  # pragma: no cover - grid kinds carry no per-synapse delays
