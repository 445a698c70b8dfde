"""Layer placement (Speck): layers matched to cores by maximum bipartite matching."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nmcompiler.ir.errors import FitError

from ...mapping import Partition, Placement
from ...targets import Target


# =========================================================================== Speck
def place_layers(part: Partition, target: Target, seed: int) -> Placement:
    """Place one layer per core by bipartite matching of layers to cores that fit them."""
    from scipy.sparse.csgraph import maximum_bipartite_matching

    names = part.usage.names
    p = int(target.total_cores)
    limits = []
    for name in names:
        if name in ("neurons", "neuron_memory_words"):
            v = target.per_core("neurons")
        elif name == "kernel_memory_words":
            v = target.per_core("synaptic_memory_words")
        elif name == "bias_memory_words":
            v = target.per_core("bias_memory_words")
        elif name == "destination_cores":
            v = target.per_core("max_destinations")
        else:
            v = np.full(p, -1)
        limits.append(np.asarray(v, dtype=np.int64))
    lim = np.stack(limits, axis=1)  # (P, names)
    skip = np.array([n == "neurons" for n in names])  # Speck counts neuron memory
    used = part.usage.used
    fits = np.all((lim[None, :, :] < 0) | (used[:, None, :] <= lim[None, :, :]) |
                  skip[None, None, :], axis=2)
    match = maximum_bipartite_matching(sp.csr_matrix(fits.astype(np.int8)),
                                       perm_type="column")
    if np.any(match < 0):
        bad = np.flatnonzero(match < 0)
        layer = part.populations[int(bad[0])]
        options = np.flatnonzero(fits[bad[0]]).tolist()
        raise FitError(
            f"layers cannot all get a {target.name} core: layer '{layer}' fits cores "
            f"{options} only and they are taken by other layers; {int(fits.any(1).sum())} "
            f"of {part.n_cores} layers fit some core",
            obj=layer, rule="core assignment", need=part.n_cores,
            limit=int(fits.any(axis=0).sum()),
            hint="shrink the layers that compete for the large-memory cores (fewer "
                 "channels, smaller kernels or feature maps)")
    core = match.astype(np.int64)
    cost = int(np.sum(part.edge_messages))
    return Placement(target=target.name, core=core,
                     coords=np.asarray(target.core_coords())[core], cost=cost,
                     messages=int(part.messages), mean_hops=1.0 if cost else 0.0,
                     max_link_load=int(part.edge_messages.max(initial=0)),
                     method="matching", optimal=True, lower_bound=float(cost),
                     seed=int(seed), stats={})
